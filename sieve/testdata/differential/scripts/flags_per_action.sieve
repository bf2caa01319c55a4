require ["imap4flags", "fileinto"];
setflag "\\Seen";
fileinto "Lists";
setflag "\\Deleted";
fileinto "Archive";
removeflag "\\Deleted";
