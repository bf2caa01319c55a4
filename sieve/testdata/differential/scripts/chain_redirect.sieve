redirect "site@example.net";
