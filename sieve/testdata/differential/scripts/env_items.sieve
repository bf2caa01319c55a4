require ["environment", "fileinto"];
if environment :is "location" "MS" { fileinto "MS"; }
if environment :matches "host" "?*" { fileinto "HostSet"; }
if environment :matches "domain" "?*" { fileinto "DomainSet"; }
if environment :contains "vnd.example.unknown" "" { fileinto "Unknown"; }
if environment :is "name" "" { fileinto "NoName"; }
