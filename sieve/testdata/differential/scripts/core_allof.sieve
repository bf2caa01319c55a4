require "fileinto";
if allof (header :contains "from" "alice", header :contains "subject" "meeting") {
  fileinto "Both";
}
