require ["variables", "fileinto"];
set :lower "a" "MiXeD";
set :upper "b" "MiXeD";
set :lowerfirst "c" "MiXeD";
set :upperfirst "d" "mIXED";
set :length "e" "MiXeD";
set :upper :lowerfirst "f" "mixed";
set :lower :upperfirst "g" "MIXED";
fileinto "${a}.${b}.${c}.${d}.${e}.${f}.${g}";
