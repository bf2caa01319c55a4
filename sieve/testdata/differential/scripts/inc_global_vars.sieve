require ["include", "variables", "fileinto"];
global "box";
set "box" "FromMain";
include "uses_global";
