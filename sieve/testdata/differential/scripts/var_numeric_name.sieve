require ["variables", "fileinto"];
if header :matches "subject" "M*g*" { fileinto "${01}-${0001}-${2}"; }
