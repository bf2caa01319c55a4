require "fileinto";
if header :contains "list-id" "dev.lists.example.net" {
  fileinto "Lists";
}
