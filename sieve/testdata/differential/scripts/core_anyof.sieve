require "fileinto";
if anyof (header :contains "subject" "invoice", address :is "from" "dave@example.net") {
  fileinto "Either";
}
