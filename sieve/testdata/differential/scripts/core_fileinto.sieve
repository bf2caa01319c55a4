require "fileinto";
fileinto "Lists";
