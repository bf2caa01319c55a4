require ["variables", "fileinto"];
if header :matches "x-multi" "*" { set "m" "${1}"; }
if header :matches "from" "*<*>" { set "addr" "${2}"; }
fileinto "${m}-${addr}";
