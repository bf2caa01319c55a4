require ["reject", "fileinto"];
fileinto "Lists";
reject "Both?";
