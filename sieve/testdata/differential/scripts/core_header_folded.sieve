require "fileinto";
if header :is "subject" "This subject is folded across two lines" { fileinto "Unfolded"; }
if header :contains "subject" "folded\r\n" { fileinto "Raw"; }
if header :is "x-folded" "one  two" { fileinto "TwoSpaces"; }
