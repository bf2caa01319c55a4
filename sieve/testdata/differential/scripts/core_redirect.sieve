redirect "forward@example.net";
