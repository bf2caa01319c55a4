require ["copy", "fileinto"];
redirect :copy "forward@example.net";
fileinto "Lists";
redirect "second@example.net";
