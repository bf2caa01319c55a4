# The case modifiers of set change ASCII letters only, in Pigeonhole.
require ["variables", "fileinto"];
set :upperfirst "a" "élan";
set :lowerfirst "b" "ÉLAN";
set :lower "c" "ÉCOLE Straße";
set :upper "d" "straße ñ";
set :upperfirst :lower "e" "ÉCOLE";
fileinto "${a}|${b}|${c}|${d}|${e}";
