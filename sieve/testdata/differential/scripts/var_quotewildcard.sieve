require ["variables", "fileinto"];
set :quotewildcard "q" "a*b?c\\";
if string :is "${q}" "a\\*b\\?c\\\\" { fileinto "Quoted"; }
if header :matches "subject" "Sale ${q}*" { fileinto "NoMatch"; }
set :quotewildcard "w" "*50%*";
if header :matches "subject" "Sale ${w} off*" { fileinto "WildcardAsLiteral"; }
