require ["vacation", "fileinto"];
fileinto "Lists";
vacation :subject "Away" "Away.";
