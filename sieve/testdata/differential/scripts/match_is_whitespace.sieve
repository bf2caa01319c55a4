require "fileinto";
if header :is "subject" "Meeting tomorrow at 10 " { fileinto "Trailing"; }
if header :is "subject" "meeting TOMORROW at 10" { fileinto "Casefold"; }
