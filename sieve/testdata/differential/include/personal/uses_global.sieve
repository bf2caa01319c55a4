require ["include", "variables", "fileinto"];
global "box";
fileinto "${box}-seen";
