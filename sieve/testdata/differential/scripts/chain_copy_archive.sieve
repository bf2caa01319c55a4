# A site script that archives a copy and keeps the message.
require ["fileinto", "copy"];
fileinto :copy "Archive";
