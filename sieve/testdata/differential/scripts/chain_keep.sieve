# A site script that keeps the message explicitly.
keep;
