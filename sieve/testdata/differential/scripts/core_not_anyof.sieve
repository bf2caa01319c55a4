require "fileinto";
if not anyof (exists "list-id", header :contains "precedence" "bulk") {
  fileinto "Personal";
}
