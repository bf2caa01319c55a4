redirect "Forward Person <forward@example.net>";
