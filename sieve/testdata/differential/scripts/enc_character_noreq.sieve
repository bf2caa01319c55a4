require "fileinto";
fileinto "no-${hex:41}";
