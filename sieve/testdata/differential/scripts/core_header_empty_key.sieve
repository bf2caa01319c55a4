require "fileinto";
if header :contains "subject" "" { fileinto "SubjectPresent"; }
if header :is "x-empty" "" { fileinto "EmptyIs"; }
