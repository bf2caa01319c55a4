require ["variables", "fileinto"];
set "folder" "Lists";
set "FOLDER" "${folder}-x";
fileinto "${Folder}";
