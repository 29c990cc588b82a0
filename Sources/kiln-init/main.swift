print("kiln-init")
