require "fileinto";
if header :contains "subject" "meeting" {
  fileinto "Meetings";
} elsif header :contains "subject" "[dev]" {
  fileinto "Lists";
} elsif exists "subject" {
  fileinto "Other";
} else {
  discard;
}
