require ["fileinto", "variables"];
set "box" "a\u0000b";
fileinto "${box}";
