require ["vacation", "variables"];
if header :matches "subject" "*" {
  vacation :subject "Re: ${1}" "Got your mail about ${1}.";
}
