require "fileinto";
fileinto "Lists;
