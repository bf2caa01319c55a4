require ["variables", "fileinto"];
set :upperfirst :lower "t" "sUBJECT";
if header :matches "subject" "*" { set :length "l" "${1}"; }
fileinto "${t}-${l}";
