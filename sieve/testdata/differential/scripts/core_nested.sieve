require "fileinto";
if exists "from" {
  if allof (not exists "list-id", anyof (size :over 1K, header :matches "subject" "*10")) {
    if true { fileinto "Deep"; }
  }
}
