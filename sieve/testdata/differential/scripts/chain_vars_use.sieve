require ["variables", "fileinto"];
fileinto "x${box}";
