require "fileinto";
if header :matches :comparator "i;octet" "subject" "meeting*" { fileinto "Lower"; }
if header :matches :comparator "i;octet" "subject" "Meeting*" { fileinto "Exact"; }
