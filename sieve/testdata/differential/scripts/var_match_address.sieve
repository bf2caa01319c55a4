require ["variables", "fileinto", "envelope"];
if envelope :localpart :matches "to" "*+*" { fileinto "detail-${2}"; }
if address :domain :matches "from" "*.*" { fileinto "dom-${1}-${2}"; }
