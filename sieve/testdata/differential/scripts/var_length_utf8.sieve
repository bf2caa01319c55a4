require ["variables", "fileinto"];
set :length "n" "café";
set :upper "u" "café";
fileinto "n${n}-${u}";
