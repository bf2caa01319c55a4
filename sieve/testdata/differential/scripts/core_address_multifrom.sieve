require "fileinto";
if address :is "from" "third@example.org" { fileinto "Third"; }
if address :is "from" "first@example.com" { fileinto "First"; }
if header :contains "from" "Second" { fileinto "SecondHeader"; }
if address :is "sender" "secretary@example.com" { fileinto "Sender"; }
