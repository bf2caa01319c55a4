require ["include", "fileinto"];
if exists "list-id" {
  fileinto "ListsEarly";
  return;
}
fileinto "NoList";
