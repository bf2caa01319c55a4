require ["envelope", "fileinto"];
if envelope :is "from" "alice@example.com" { fileinto "EnvFrom"; }
if envelope :domain :is "to" "example.org" { fileinto "EnvToDomain"; }
if envelope :localpart :matches "to" "me*" { fileinto "EnvToLocal"; }
if envelope :all :contains ["from", "to"] "@example." { fileinto "Both"; }
