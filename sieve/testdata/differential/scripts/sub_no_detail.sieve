require ["subaddress", "fileinto"];
if address :detail :matches "to" "*" { fileinto "AnyDetail"; }
if not address :detail :contains "to" "" { fileinto "NoDetail"; }
