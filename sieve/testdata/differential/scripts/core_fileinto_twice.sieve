require "fileinto";
fileinto "Lists";
fileinto "Lists";
fileinto "Archive";
