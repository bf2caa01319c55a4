require "ereject";
ereject "Refused at SMTP time.";
