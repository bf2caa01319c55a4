require "fileinto";
fileinto "Lists";
stop;
fileinto "Archive";
