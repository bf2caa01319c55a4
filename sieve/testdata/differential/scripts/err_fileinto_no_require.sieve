fileinto "Lists";
