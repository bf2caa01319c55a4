require "fileinto";
fileinto "a\\";
fileinto "b\";
