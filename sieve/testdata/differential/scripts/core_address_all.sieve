require "fileinto";
if address :all :is "from" "alice@example.com" { fileinto "FromAlice"; }
