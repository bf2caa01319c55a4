require ["copy", "fileinto"];
fileinto :copy "Lists";
