require ["variables", "fileinto"];
set "who" "alice";
set "hdr" "from";
if header :contains "${hdr}" "${who}" { fileinto "Dynamic"; }
