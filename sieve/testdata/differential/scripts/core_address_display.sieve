require "fileinto";
if address :is "from" "Alice Example <alice@example.com>" { fileinto "WithName"; }
if address :contains "from" "Example" { fileinto "ContainsDomainCase"; }
