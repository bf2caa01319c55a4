require ["variables"];
set "user" "forward";
redirect "${user}@example.net";
