require "fileinto";
if address :localpart :is "to" "me" { fileinto "LocalMe"; }
if address :domain :is ["to", "cc"] "example.net" { fileinto "DomainNet"; }
if address :domain :is "cc" "EXAMPLE.com" { fileinto "CcCase"; }
