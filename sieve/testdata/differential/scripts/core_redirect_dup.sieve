redirect "forward@example.net";
redirect "forward@example.net";
