require "fileinto";
if address :comparator "i;octet" :is "cc" "carol@example.com" { fileinto "Octet"; }
if address :comparator "i;ascii-casemap" :is "cc" "carol@example.com" { fileinto "Casemap"; }
